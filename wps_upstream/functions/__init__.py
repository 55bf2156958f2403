"""The app's Azure Functions, one blueprint per module; function_app.py registers them."""
