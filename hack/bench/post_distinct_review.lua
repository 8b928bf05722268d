-- wrk: POST an AdmissionReview whose inline source differs on every request (a counter in a
-- comment on the first line), so every review is parsed and classified: no cache hits.
local f = assert(io.open(os.getenv("REVIEW"), "r"))
local body = f:read("*a")
f:close()
local marker = '"gaia.dev/source": "'
local at = assert(string.find(body, marker, 1, true)) + #marker - 1
local head, tail = string.sub(body, 1, at), string.sub(body, at + 1)
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    head .. "# request " .. counter .. "\\n" .. tail)
end
