"""`vaegen serve`: the latent space of a model as a local web page over a JSON API.

    settings   what the server is told, read from the environment (uvicorn calls the factory with no arguments)
    schemas    the API's requests and responses, every input bounded
    landscape  the map shown: shipped with the model, cached, or built in the background while the server answers
    gate       the model shared between calls in turns, costly calls in a slow lane, a bounded queue, cancellation
    service    the model and its map, one method per endpoint; loaded as the settings say
    api        the endpoints, on a router, with the service and the gate as dependencies
    app        the application factory: the API, the page, the security headers, the lifespan that opens the gate
               and starts the map's build
"""
