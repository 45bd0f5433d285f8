"""Recipes: several stages run as one command (`experiment=rova_recipe`), each step in its own run dir."""
