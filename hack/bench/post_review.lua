-- wrk: POST the same AdmissionReview on every request.
local f = assert(io.open(os.getenv("REVIEW"), "r"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
