"""A small Azure Functions dev host: serves function_app.py over HTTP where Core Tools is missing."""
