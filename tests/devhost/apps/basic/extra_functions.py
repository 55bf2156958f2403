"""A blueprint, registered by function_app.py: its functions are served like the app's own."""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="from_blueprint", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def from_blueprint(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("served from a blueprint")
