"""`vaegen serve`: the latent space of a model as a local web page over a JSON API.

    schemas    the API's requests and responses, every input bounded
    landscape  the map: codes of a corpus (or of samples) on their two principal axes, cached
    gate       model calls one at a time, behind a bounded queue with a timeout
    app        the FastAPI application: the API, the page, the security headers
"""
