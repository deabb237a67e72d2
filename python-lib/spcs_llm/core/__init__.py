"""What every backend shares: auth, transport, retry, limiter, errors, redaction, tokens, codecs."""
