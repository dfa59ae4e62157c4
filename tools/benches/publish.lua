-- wrk script: POST one valid employment-status event per request to a node's local API.
-- Each request carries a distinct caseRef so no two are the same document.
-- Usage: wrk -t2 -c32 -d20s -s tools/benches/publish.lua http://127.0.0.1:PORT/api/v1/events
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- A valid PIN per request (sex digit, real birth date, 5 digits), so persons vary.
local function pin(n)
  return string.format("2%02d%02d19%02d%05d", 1 + n % 28, 1 + math.floor(n / 28) % 12, 70 + n % 30, n % 100000)
end

request = function()
  counter = counter + 1
  local body = string.format([[{"type":"employment-status","data":{"event":"EMPLOYMENT_STARTED","eventDate":"2024-03-01","purpose":"EMPLOYMENT_SERVICES","legalBasis":"Law of the Kyrgyz Republic on Employment Promotion, art. 12","caseRef":"WRK-%d-%d","person":{"pin":"%s"},"labourForceStatus":"EMPLOYED","job":{"spellId":"spell-%d","startDate":"2024-03-01","icse18":"41","formality":"FORMAL","formalityEvidence":"SOCIAL_FUND_CONTRIBUTIONS","contractDuration":"PERMANENT","isco08":"7112","isic":"4100","region":"KG-O"}}}]], math.random(1, 1000000000), counter, pin(counter), counter)
  return wrk.format(nil, nil, nil, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
