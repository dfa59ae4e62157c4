#!/usr/bin/env python3
# A node holding N events: publish N employment-status events in batches of 1000 through the
# local API, SIGKILL the node, time the restart until it serves, read RSS after the restart and
# after reading the whole feed, and compare the data directory with the raw JWS bytes.
# Usage: python3 tools/benches/million.py sled|redb N   (needs target/release/jol; STORE_CACHE_MIB=M
# sets the node's store_cache_mib; PERSONS=P spreads the events over P persons, event i about
# person i mod P, where by default every event is about one person, whose view then names them all)
import json, subprocess, sys, time, urllib.request, os, signal, tempfile
engine, n = sys.argv[1], int(sys.argv[2])
cache = f'store_cache_mib = {int(os.environ["STORE_CACHE_MIB"])}\n' if os.environ.get("STORE_CACHE_MIB") else ""
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
jol = os.environ.get("JOL", os.path.join(ROOT, "target/release/jol"))
d = tempfile.mkdtemp()
subprocess.run([jol, "keygen", "--out", f"{d}/sign.pem"], capture_output=True, check=True)
open(f"{d}/node.toml", "w").write(f'member = "central-server/GOV/70000002/employment"\ndata_dir = "data"\nstore_engine = "{engine}"\n{cache}[signing]\nkey_file = "sign.pem"\nkey_name = "s1"\n[local]\nlisten = "127.0.0.1:0"\nrequests_per_token_per_second = 1000000\n')
token = subprocess.run([jol, "token", "--config", f"{d}/node.toml", "create", "--name", "bench", "--scopes", "admin", "--purpose", "EMPLOYMENT_SERVICES"], capture_output=True, check=True, text=True).stdout.strip()
AUTH = {"Authorization": f"Bearer {token}"}
def get(url):
    return urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=60).read()
def start():
    t = time.time()
    p = subprocess.Popen([jol, "serve", "--config", f"{d}/node.toml"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    addr = json.loads(line)["listening"]["local"]
    # ready when /readyz answers
    while True:
        try:
            urllib.request.urlopen(f"http://{addr}/healthz", timeout=5).read(); break
        except Exception: time.sleep(0.01)
    return p, addr, time.time() - t
persons = int(os.environ.get("PERSONS", "1"))
def pin(n):  # jol_tools::synthetic::pin: a valid, distinct PIN for each n
    serial, date = n % 100000, n // 100000
    day, year = date % 336, 1950 + (date // 336) % 60
    sex = 1 + (date // 336 // 60) % 2
    return f"{sex}{1 + day % 28:02}{1 + day // 28:02}{year}{serial:05}"
doc = json.load(open(os.path.join(ROOT, "tests/examples/employment-status/valid/employment-started.json")))
p, addr, _ = start()
for b in range(n // 1000):
    evs = []
    for i in range(1000):
        d2 = json.loads(json.dumps(doc)); d2["job"]["spellId"] = f"J-{b}-{i}"
        if persons > 1: d2["person"]["pin"] = pin((b * 1000 + i) % persons)
        evs.append({"type": "employment-status", "data": d2})
    req = urllib.request.Request(f"http://{addr}/api/v1/events/batch", data=json.dumps({"events": evs}).encode(), headers={"Content-Type": "application/json", **AUTH})
    urllib.request.urlopen(req, timeout=60).read()
time.sleep(1)
os.kill(p.pid, signal.SIGKILL); p.wait()
size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(f"{d}/data") for f in fs)
p, addr, t = start()
ready = json.loads(get(f"http://{addr}/readyz"))
events = ready["store"]["events"]
behind = ready.get("views", {}).get("behind", "?")
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
r0 = rss(p.pid)
after = 0
raw = 0
while True:
    page = json.loads(get(f"http://{addr}/api/v1/events?after={after}&limit=1000"))
    if not page["events"]: break
    for e in page["events"]:
        raw += len(json.dumps(e["jws"], separators=(",", ":")))
    after = page["next"]
r1 = rss(p.pid)
print(f"{engine}: RSS after restart {r0:.0f} MiB, after reading the whole feed {r1:.0f} MiB; raw JWS {raw/1048576:.0f} MiB, ratio {size/raw:.2f}")
print(f"{engine}: {n} events, restart after SIGKILL to serving: {t*1000:.0f} ms, events after restart {events} (views {behind} behind at the first RSS reading), data dir {size/1048576:.0f} MiB")
p.terminate(); p.wait()
