import json


class Route:
    def __init__(self, path):
        self.path = path
        self.target = None

    def to(self, target):
        self.target = target
        return self


ROUTES = [Route("/fast").to("cuda"), Route("/slow").to("cpu-pool")]


def handle(req):
    path = json.loads(req.body)["path"]
    for r in ROUTES:
        if r.path == path:
            return {"pool": r.target}
    return {"pool": None}
