"""Recipes of the models this project trains itself."""
