"""DSS Flow recipes: front ends over the deployment library, run by ``custom-recipes/<id>/recipe.py``."""
