"""HTTP response bodies for tests that must see what the client does with a response (here: close it)."""

import io


class RecordingRaw(io.RawIOBase):
    """A response body that records being closed (what a finished or cancelled stream must do)."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.was_closed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self.was_closed = True
        super().close()
