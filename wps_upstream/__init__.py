"""The Web PubSub upstream: the deployed code behind function_app.py."""
