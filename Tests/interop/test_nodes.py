"""Several `medic serve` nodes on one PostgreSQL (the throwaway cluster of scripts/postgres.sh, a fresh database per
test): events committed on one node reach the subscribers of every node, gap-free and in order, the same bytes; a
listener connection killed with pg_terminate_backend loses nothing (the node reads the store again after it
reconnects); a client that saw more on another node is not refused as "beyond the head"."""
import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import websockets

from interop_support import binary, free_port, wait_for_port
from medic_server import make_repo

PSQL = "/usr/lib/postgresql/15/bin/psql"


@pytest.fixture
def pg_url():
    base = os.environ.get("MEDIC_TEST_POSTGRES_URL")
    if not base:
        pytest.fail("MEDIC_TEST_POSTGRES_URL is not set: run through scripts/test.sh (it starts a throwaway PostgreSQL)")
    return base.rsplit("/", 1)[0] + "/nodes_" + uuid.uuid4().hex[:12]


def psql(url, sql):
    out = subprocess.run([PSQL, "-X", "-A", "-t", "-d", url, "-c", sql], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class Node:
    def __init__(self, name, url, tmp_path, repo, script, test_command="true", extra=()):
        self.script = script
        self.name, self.url = name, url
        self.port = free_port()
        self.data_dir = str(tmp_path / name)
        os.makedirs(self.data_dir, exist_ok=True)
        self.args = [binary("MEDIC_BIN"), "serve", "--no-demo", "--listen", f"127.0.0.1:{self.port}", "--store", url,
                     "--data-dir", self.data_dir, "--node-id", name, "--repo", repo, "--test-command", test_command,
                     "--llm", f"scripted:{script}", *extra]
        self.log = open(os.path.join(self.data_dir, "serve.log"), "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def cluster(pg_url, tmp_path):
    repo = make_repo(str(tmp_path / "repo"))
    script = tmp_path / "script.json"
    script.write_text('{"replies": []}')
    nodes = []
    tokens = []

    def make(n, test_command="true", replies=None, extra=(), own_clone=False):
        if replies is not None:
            script.write_text(json.dumps({"replies": replies}))
        for _ in range(n):
            name = f"node{len(nodes) + 1}"
            path = repo
            if own_clone:   # the node's own copy of the repository, at a path of its own (same name: "repo")
                path = str(tmp_path / f"{name}-clone" / "repo")
                subprocess.run(["git", "clone", "-q", repo, path], check=True)
            nodes.append(Node(name, pg_url, tmp_path, path, str(script), test_command, extra).start())
        if not tokens:
            tokens.append(token_for("alice", "admin"))
        return nodes, tokens[0]

    def token_for(name, role):
        return subprocess.run([binary("MEDIC_BIN"), "token", "create", "--name", name, "--role", role, "--store", pg_url],
                              check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]

    make.token = token_for

    yield make
    for node in nodes:
        node.stop()


class Client:
    """A medic.v1 session: every event frame kept as text, per topic."""

    def __init__(self, ws):
        self.ws = ws
        self.frames = {}
        self.presence = {}
        self.acks = {}
        self.n = 0
        self.tag = uuid.uuid4().hex[:8]
        self.reader = asyncio.ensure_future(self.read())

    @classmethod
    async def open(cls, port, token):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["medic.v1"], max_size=None)
        await ws.send(json.dumps({"type": "hello", "id": "h", "token": token}))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        return cls(ws)

    async def read(self):
        try:
            await self.read_frames()
        except websockets.ConnectionClosed:
            self.closed = True   # its node died (the tests kill nodes)

    async def read_frames(self):
        async for text in self.ws:
            msg = json.loads(text)
            if msg.get("type") == "event" and msg.get("seq") is not None:
                self.frames.setdefault(msg["topic"], []).append(text)
            elif msg.get("type") == "presence":
                self.presence[msg["topic"]] = sorted(m["principal"] for m in msg["members"])
            elif msg.get("id"):
                self.acks[msg["id"]] = msg

    async def command(self, msg, timeout=15):
        self.n += 1
        cid = f"c{self.n}-{self.tag}"   # ids are per principal: clients of one principal must not share them
        await self.ws.send(json.dumps({**msg, "id": cid}))
        end = time.time() + timeout
        while cid not in self.acks:
            assert time.time() < end, f"no answer to {msg}"
            await asyncio.sleep(0.02)
        return self.acks.pop(cid)

    def seqs(self, topic):
        return [json.loads(f)["seq"] for f in self.frames.get(topic, [])]

    async def close(self):
        self.reader.cancel()
        await self.ws.close()


async def until(probe, timeout=20, what=""):
    end = time.time() + timeout
    while time.time() < end:
        if probe():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def test_events_committed_on_one_node_reach_every_node_in_order(cluster):
    nodes, token = cluster(3)

    async def run():
        clients = [await Client.open(node.port, token) for node in nodes]
        for c in clients:
            assert (await c.command({"type": "subscribe", "topic": "proposals", "since": 0}))["type"] == "ack"
        ack = await clients[0].command({"type": "propose", "repo": "repo", "title": "Across nodes", "description": "d",
                                        "changes": [{"path": "a.txt", "action": "create", "content": "a\n"}]})
        pid = ack["proposal"]
        topic = f"proposal:{pid}"
        for c in clients:
            assert (await c.command({"type": "subscribe", "topic": topic, "since": 0}))["type"] == "ack"
        # The run (on node1, which took the command) ends awaiting review; every node's client sees it.
        for c in clients:
            await until(lambda c=c: any('"awaiting_review"' in f for f in c.frames.get(topic, [])), 60, "awaiting_review everywhere")
        # Comments from node1 while the others watch: the same frames, byte for byte, in order, on every node.
        for i in range(30):
            assert (await clients[0].command({"type": "comment", "proposal": pid, "text": f"note {i}"}))["type"] == "ack"
        head = max(clients[0].seqs(topic))
        for c in clients:
            await until(lambda c=c: c.seqs(topic)[-1:] == [head], 20, "every node reached the head")
        for c in clients:
            assert c.seqs(topic) == list(range(1, head + 1))
            assert c.frames[topic] == clients[0].frames[topic]
            assert c.frames["proposals"] == clients[0].frames["proposals"]
        # A client that saw the head on node1 resumes on node3 from there (not refused as beyond the head).
        late = await Client.open(nodes[2].port, token)
        assert (await late.command({"type": "subscribe", "topic": topic, "since": head}))["type"] == "ack"
        for c in clients + [late]:
            await c.close()

    asyncio.run(run())


def test_a_killed_listener_connection_loses_no_event(cluster, pg_url):
    nodes, token = cluster(2)

    async def run():
        writer = await Client.open(nodes[0].port, token)
        watcher = await Client.open(nodes[1].port, token)
        ack = await writer.command({"type": "propose", "repo": "repo", "title": "Listener", "description": "d",
                                    "changes": [{"path": "b.txt", "action": "create", "content": "b\n"}]})
        topic = f"proposal:{ack['proposal']}"
        await watcher.command({"type": "subscribe", "topic": topic, "since": 0})
        await until(lambda: len(watcher.seqs(topic)) >= 3, 30, "first events on node2")
        await until(lambda: '"awaiting_review"' in "".join(watcher.frames.get(topic, [])), 60, "the run ended")
        # node2's listener backend is terminated and kept out (the database takes no new connection; those open
        # stay) while node1 writes: every notification of those writes is lost for node2.
        admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
        database = pg_url.rsplit("/", 1)[1]
        psql(admin_url, f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
        try:
            killed = psql(admin_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE application_name = 'medic:node2-listen'")
            assert killed == "1", killed
            before = len(watcher.seqs(topic))
            for i in range(40):
                await writer.command({"type": "comment", "proposal": ack["proposal"], "text": f"while away {i}"})
            await asyncio.sleep(1.0)
            assert len(watcher.seqs(topic)) == before, "node2 heard writes its listener could not have heard"
        finally:
            psql(admin_url, f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")
        # The listener reconnects, reads the head again and fetches what it missed: no gap, no repeat.
        head = int(psql(pg_url, f"SELECT head FROM topic_heads WHERE topic = '{topic}'"))
        await until(lambda: watcher.seqs(topic)[-1:] == [head], 30, "node2 caught up after its listener reconnected")
        assert watcher.seqs(topic) == list(range(1, head + 1))
        # It reconnected (a new listener backend) and said so in its metrics.
        assert psql(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'medic:node2-listen'") == "1"
        metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{nodes[1].port}/metrics"], capture_output=True, text=True).stdout
        resyncs = [line for line in metrics.splitlines() if line.startswith("medic_node_resyncs_total ")]
        assert resyncs and int(resyncs[0].split()[1]) >= 2, resyncs
        await writer.close()
        await watcher.close()

    asyncio.run(run())


def rest(node, path, token):
    req = urllib.request.Request(f"http://127.0.0.1:{node.port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_presence_spans_the_nodes_and_a_dead_nodes_members_disappear(cluster):
    nodes, alice = cluster(3)
    bob = cluster.token("bob", "viewer")
    carol = cluster.token("carol", "viewer")
    # Every node knows the others through their heartbeats.
    end = time.time() + 15
    while time.time() < end and sum(n["alive"] for n in rest(nodes[0], "/api/v1/cluster", alice)["nodes"]) < 3:
        time.sleep(0.2)
    view = rest(nodes[0], "/api/v1/cluster", alice)
    assert view["node"] == "node1" and view["shared"] is True
    assert sorted(n["id"] for n in view["nodes"] if n["alive"]) == ["node1", "node2", "node3"]
    assert [n["id"] for n in view["nodes"] if n["self"]] == ["node1"]
    # Viewers may not read it.
    try:
        rest(nodes[0], "/api/v1/cluster", bob)
        raise AssertionError("a viewer read the cluster")
    except urllib.error.HTTPError as e:
        assert e.code == 403

    async def run():
        a1 = await Client.open(nodes[0].port, alice)
        ack = await a1.command({"type": "propose", "repo": "repo", "title": "Presence", "description": "d",
                                "changes": [{"path": "c.txt", "action": "create", "content": "c\n"}]})
        topic = f"proposal:{ack['proposal']}"
        await a1.command({"type": "subscribe", "topic": topic, "since": 0})
        b2 = await Client.open(nodes[1].port, bob)
        await b2.command({"type": "subscribe", "topic": topic, "since": 0})
        a2 = await Client.open(nodes[1].port, alice)             # alice on two nodes counts once
        await a2.command({"type": "subscribe", "topic": topic, "since": 0})
        c3 = await Client.open(nodes[2].port, carol)
        await c3.command({"type": "subscribe", "topic": topic, "since": 0})
        for c in (a1, b2, a2, c3):
            await until(lambda c=c: c.presence.get(topic) == ["alice", "bob", "carol"], 15, f"presence everywhere: {c.presence}")
        # carol leaves (node3 stays up): gone everywhere.
        await c3.command({"type": "unsubscribe", "topic": topic})
        for c in (a1, b2):
            await until(lambda c=c: c.presence.get(topic) == ["alice", "bob"], 15, f"carol left: {c.presence}")
        # node2 dies with kill -9: bob (only there) disappears from node1's presence within the documented time;
        # alice stays (she is on node1 too).
        killed_at = time.time()
        nodes[1].proc.kill()
        nodes[1].proc.wait(timeout=10)
        await until(lambda: a1.presence.get(topic) == ["alice"], 25, f"bob stayed after node2 died: {a1.presence}")
        assert time.time() - killed_at <= 10 + 2 + 3   # dead after 10 s, seen at the next 2 s heartbeat, slack
        view = rest(nodes[0], "/api/v1/cluster", alice)
        assert [n["id"] for n in view["nodes"] if not n["alive"]] == ["node2"]
        for c in (a1, c3):
            await c.close()

    asyncio.run(run())


HAPROXY_CFG = os.path.join(os.path.dirname(__file__), "..", "..", "config", "haproxy.cfg")


def start_haproxy(tmp_path, nodes):
    """config/haproxy.cfg as the README gives it, its ports rewritten to the test's."""
    port = free_port()
    with open(HAPROXY_CFG) as f:
        cfg = f.read()
    assert "bind 127.0.0.1:8080" in cfg
    cfg = cfg.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{port}")
    for i, node in enumerate(nodes, start=1):
        assert f"server node{i} 127.0.0.1:808{i} check" in cfg
        cfg = cfg.replace(f"server node{i} 127.0.0.1:808{i} check", f"server node{i} 127.0.0.1:{node.port} check")
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg)
    check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return port, proc


class Follower:
    """A client of the balancer that follows one topic and, when its connection drops, reconnects through the
    balancer and resumes from the last seq it has (as the page does)."""

    def __init__(self, port, token, topic):
        self.port, self.token, self.topic = port, token, topic
        self.seqs = []
        self.reconnects = 0
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        while True:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws", subprotocols=["medic.v1"], open_timeout=5) as ws:
                    await ws.send(json.dumps({"type": "hello", "id": "h", "token": self.token}))
                    await ws.send(json.dumps({"type": "subscribe", "id": "s", "topic": self.topic,
                                              "since": self.seqs[-1] if self.seqs else 0}))
                    async for text in ws:
                        msg = json.loads(text)
                        if msg.get("type") == "event" and msg.get("topic") == self.topic and msg.get("seq") is not None:
                            self.seqs.append(msg["seq"])
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)


async def followers_resumed(client, topic, followers, dead):
    """Every follower reaches the topic's head with every seq once, in order, across its reconnect; answers the head."""
    head = (await client.command({"type": "subscribe", "topic": topic, "since": 0}))["head"]
    await until(lambda: all(f.seqs and f.seqs[-1] == head for f in followers), 30,
                f"followers caught up to {head}: {[f.seqs[-1:] for f in followers]}")
    for f in followers:
        assert f.seqs == list(range(1, head + 1)), f.seqs   # no gap, no repeat, across the reconnect
    assert sum(f.reconnects for f in followers) >= 1, f"nobody was on {dead}"
    return head


def open_connections(node):
    text = subprocess.run(["curl", "-s", f"http://127.0.0.1:{node.port}/metrics"], capture_output=True, text=True, timeout=10).stdout
    return int(float(next(line.split()[1] for line in text.splitlines() if line.startswith("medic_connections_open "))))


def test_through_haproxy_clients_spread_over_the_nodes_and_survive_a_kill_9(cluster, tmp_path):
    nodes, alice = cluster(3)
    port, haproxy = start_haproxy(tmp_path, nodes)
    try:
        async def run():
            owner = await Client.open(nodes[0].port, alice)
            ack = await owner.command({"type": "propose", "repo": "repo", "title": "Balanced", "description": "d",
                                       "changes": [{"path": "d.txt", "action": "create", "content": "d\n"}]})
            topic = f"proposal:{ack['proposal']}"
            followers = [Follower(port, alice, topic) for _ in range(9)]
            await until(lambda: all(f.seqs for f in followers), 30, "every follower got events")
            # leastconn spread them: every node holds some (node1 also holds the owner's own connection).
            counts = [open_connections(n) for n in nodes]
            assert all(c >= 2 for c in counts), counts
            for i in range(20):
                await owner.command({"type": "comment", "proposal": ack["proposal"], "text": f"before {i}"})
            # node3 dies; its followers reconnect through the balancer to the others and resume.
            nodes[2].proc.kill()
            nodes[2].proc.wait(timeout=10)
            for i in range(20):
                await owner.command({"type": "comment", "proposal": ack["proposal"], "text": f"after {i}"})
                await asyncio.sleep(0.05)
            await followers_resumed(owner, topic, followers, "node3")
            for f in followers:
                f.task.cancel()
            await owner.close()

        asyncio.run(run())
    finally:
        haproxy.kill()
        haproxy.wait(timeout=10)


def test_a_node_joining_live_nodes_leaves_their_busy_work_alone(cluster):
    # A starting node marks busy work interrupted only when no other node is alive: node1's lease is live.
    nodes, alice = cluster(1, test_command="sleep 4")

    async def run():
        c = await Client.open(nodes[0].port, alice)
        ack = await c.command({"type": "propose", "repo": "repo", "title": "Busy", "description": "d",
                               "changes": [{"path": "e.txt", "action": "create", "content": "e\n"}]})
        topic = f"proposal:{ack['proposal']}"
        await c.command({"type": "subscribe", "topic": topic, "since": 0})
        await until(lambda: any('"testing"' in f for f in c.frames.get(topic, [])), 30, "node1 is testing")
        await asyncio.sleep(2.5)   # node1's heartbeat is in the store
        cluster(1)                 # node2 starts while node1 tests
        await until(lambda: any('"awaiting_review"' in f for f in c.frames.get(topic, [])), 30, "node1 finished its run")
        assert not any('"interrupted"' in f for f in c.frames[topic]), "node2 interrupted node1's work"
        await c.close()

    asyncio.run(run())


def metric(node, name):
    text = subprocess.run(["curl", "-s", f"http://127.0.0.1:{node.port}/metrics"], capture_output=True, text=True, timeout=10).stdout
    return int(float(next((line.split()[1] for line in text.splitlines() if line.startswith(name + " ")), "0")))


def test_kill_9_of_the_owner_mid_fix_loop_another_node_resumes_it(cluster, tmp_path):
    """The issue's done criterion: 3 nodes behind HAProxy; the node running a proposal's fix loop is killed while
    the model writes the fix; another node claims its lease once it expires, marks the step interrupted and runs it
    again; every follower (through the balancer) resumes with no gap and no repeat; every acknowledged command is
    in the log once; a command sent to a node that does not own the proposal is forwarded and acked by the owner."""
    fix = {"match": "Resumable", "delay_ms": 8000, "reply": {
        "unfixable": False, "explanation": "state.txt must say fixed.",
        "changes": [{"path": "state.txt", "action": "modify", "content": "fixed\n"}]}}
    nodes, alice = cluster(3, test_command="grep -q fixed state.txt", replies=[fix])
    bob = cluster.token("bob", "admin")
    port, haproxy = start_haproxy(tmp_path, nodes)
    try:
        async def run():
            c1 = await Client.open(nodes[0].port, alice)
            c2 = await Client.open(nodes[1].port, alice)
            c3 = await Client.open(nodes[2].port, alice)
            ack = await c1.command({"type": "propose", "repo": "repo", "title": "Resumable fix", "description": "d",
                                    "changes": [{"path": "state.txt", "action": "create", "content": "broken\n"}]})
            pid = ack["proposal"]
            topic = f"proposal:{pid}"
            followers = [Follower(port, alice, topic) for _ in range(9)]
            await c1.command({"type": "subscribe", "topic": topic, "since": 0})
            # A command sent to node2 is forwarded to node1 (the owner), which acks it once stored.
            forwarded = await c2.command({"type": "comment", "proposal": pid, "text": "note-before"})
            assert forwarded["type"] == "ack", forwarded
            assert metric(nodes[1], "medic_node_forwarded_total") == 1
            await until(lambda: any('"fixing"' in f for f in c1.frames.get(topic, [])), 60, "node1 asks the model for the fix")
            await asyncio.sleep(1.0)   # the fix is streaming
            assert not any('"awaiting_review"' in f for f in c1.frames.get(topic, []))
            nodes[0].proc.kill()
            nodes[0].proc.wait(timeout=10)
            killed = time.time()

            # Commands meanwhile: refused while node1's lease runs (retry with the same id), acked once it moved.
            async def persist(client, msg, cid):
                end = time.time() + 60
                while True:
                    await client.ws.send(json.dumps({**msg, "id": cid}))
                    while cid not in client.acks:
                        assert time.time() < end, f"no answer to {cid}"
                        await asyncio.sleep(0.02)
                    answer = client.acks.pop(cid)
                    if answer["type"] == "ack":
                        return answer
                    assert answer["code"] == "store_unavailable", answer
                    assert time.time() < end, f"{cid} never acked: {answer}"
                    await asyncio.sleep(0.5)
            for i in range(3):
                await persist(c3, {"type": "comment", "proposal": pid, "text": f"note-during-{i}"}, f"during-{i}")
            moved_after = time.time() - killed
            assert moved_after <= 10 + 2 + 5, moved_after   # lease expiry + a heartbeat + slack
            owner = rest(nodes[1], "/api/v1/cluster", alice)["leases"]
            [lease] = [l for l in owner if l["workflow"] == topic]
            assert lease["node"] in ("node2", "node3"), lease
            survivor = nodes[1] if lease["node"] == "node2" else nodes[2]
            other = nodes[2] if survivor is nodes[1] else nodes[1]

            # The survivor runs the fix loop again and reaches review; everybody sees it.
            await c2.command({"type": "subscribe", "topic": topic, "since": 0})
            await until(lambda: any('"awaiting_review"' in f for f in c2.frames.get(topic, [])), 90, "the resumed loop reached review")
            # Approval (by another admin: authors do not approve their own) through the node that does not own the
            # proposal: forwarded, applied by the owner.
            client = await Client.open(other.port, bob)
            detail = rest(survivor, f"/api/v1/proposals/{pid}", alice)
            assert detail["status"] == "awaiting_review" and detail["revision"] == 2, detail
            approved = await client.command({"type": "approve", "proposal": pid, "revision": detail["revision"]}, timeout=30)
            assert approved["type"] == "ack", approved
            await until(lambda: any('"applied"' in f for f in c2.frames.get(topic, [])), 60, "applied by the owner")
            assert subprocess.run(["git", "-C", nodes[0].args[nodes[0].args.index("--repo") + 1], "show", "HEAD:state.txt"],
                                  capture_output=True, text=True).stdout == "fixed\n"

            head = await followers_resumed(c2, topic, followers, "node1")
            # The log: the in-flight step marked interrupted once, then re-run; every acked command once.
            events = rest(other, f"/api/v1/proposals/{pid}/events?since=0&limit=1000", alice)["events"]
            assert [e["seq"] for e in events] == list(range(1, head + 1))
            statuses = [e["data"]["status"] for e in events if e["kind"] == "status_changed"]
            assert statuses.count("interrupted") == 1, statuses
            assert statuses.index("interrupted") < statuses.index("awaiting_review") < statuses.index("applied"), statuses
            text = json.dumps(events)
            for note in ["note-before"] + [f"note-during-{i}" for i in range(3)]:
                assert text.count(f'"{note}"') == 1, note
            assert metric(survivor, "medic_node_takeovers_total") >= 1
            for f in followers:
                f.task.cancel()
            assert metric(other, "medic_node_forwarded_total") >= 1
            for c in (c2, c3, client):
                await c.close()

        asyncio.run(run())
    finally:
        haproxy.kill()
        haproxy.wait(timeout=10)


def post_ingest(node, token, lines):
    body = "\n".join(json.dumps(line) for line in lines).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{node.port}/api/v1/ingest", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())


def test_one_monitor_per_cluster_and_it_moves_when_its_node_dies(cluster, tmp_path, pg_url):
    """Two nodes: the first holds the monitor's lease; lines posted to the other are forwarded to it, so an error
    seen through both nodes opens one incident, not one per node; an admin acts on it through either node. The
    monitor's node is killed: the other takes the monitor over (baselines and incidents from the store) and goes
    on detecting; a viewer cannot act through either."""
    config = tmp_path / "monitor.json"
    config.write_text(json.dumps({"monitor": {
        "bucket_seconds": 1, "detection": {"warmup_buckets": 2, "new_fingerprint_min_count": 5, "spike_min_count": 5},
        "policy": {"critical": {"multiple": 1e9, "users": 1000000}, "high": {"multiple": 1e9, "users": 1000000},
                   "medium": {"multiple": 2, "users": 1000000}}}}))
    nodes, alice = cluster(2, extra=["--config", str(config)])
    viewer = cluster.token("val", "viewer")
    leases = lambda: {l["workflow"]: l["node"] for l in rest(nodes[1], "/api/v1/cluster", alice)["leases"]}
    end = time.time() + 15
    while time.time() < end and leases().get("monitor:cluster") != "node1":
        time.sleep(0.2)
    assert leases().get("monitor:cluster") == "node1"
    assert rest(nodes[0], "/api/v1/monitor", alice)["leading"] is True
    assert rest(nodes[1], "/api/v1/monitor", alice)["leading"] is False

    def burst(message, n=8):
        for i in range(n):
            node = nodes[i % 2] if nodes[0].proc.poll() is None else nodes[1]
            out = post_ingest(node, alice, [{"service": "shop", "level": "error", "message": f"{message} {i}", "user": f"u{i}"}])
            assert out["accepted"] == 1, out

    def incidents():
        return rest(nodes[1], "/api/v1/incidents", alice)["incidents"]

    burst("checkout failed for order")
    end = time.time() + 20
    while time.time() < end and not incidents():
        time.sleep(0.3)
    time.sleep(2.5)   # a second node's monitor (if there were one) would have opened its own by now
    opened = incidents()
    assert len(opened) == 1, opened
    incident = opened[0]["id"]
    assert opened[0]["title"].startswith("checkout failed for order")   # 4 lines per node: only one monitor sees 8

    async def act(node, token, msg):
        c = await Client.open(node.port, token)
        try:
            return await c.command(msg, timeout=20)
        finally:
            await c.close()

    # An admin acknowledges through node2 (forwarded to the monitor's node); a viewer is refused on either.
    ack = asyncio.run(act(nodes[1], alice, {"type": "acknowledge_incident", "incident": incident}))
    assert ack["type"] == "ack", ack
    assert rest(nodes[1], f"/api/v1/incidents/{incident}", alice)["incident"]["status"] == "acknowledged"
    for node in nodes:
        refused = asyncio.run(act(node, viewer, {"type": "resolve_incident", "incident": incident}))
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
    # A client may not send the internal ingest command.
    refused = asyncio.run(act(nodes[1], alice, {"type": "ingest_lines", "body": "{}"}))
    assert refused["type"] == "error" and refused["code"] == "forbidden", refused

    # The monitor's node dies: node2 takes the monitor over and detects a new error posted to it.
    nodes[0].proc.kill()
    nodes[0].proc.wait(timeout=10)
    end = time.time() + 25
    while time.time() < end and leases().get("monitor:cluster") != "node2":
        time.sleep(0.3)
    assert leases().get("monitor:cluster") == "node2"
    assert rest(nodes[1], "/api/v1/monitor", alice)["leading"] is True
    time.sleep(3)   # two buckets of history on the new monitor
    burst("payment gateway timeout talking to bank", 10)
    end = time.time() + 20
    while time.time() < end and len(incidents()) < 2:
        time.sleep(0.3)
    titles = sorted(i["title"] for i in incidents())
    assert len(titles) == 2 and titles[1].startswith("payment gateway timeout"), titles
    # The first incident survived the move as it was (read from the store), and is acted on at its new node.
    ack = asyncio.run(act(nodes[1], alice, {"type": "resolve_incident", "incident": incident, "reason": "known"}))
    assert ack["type"] == "ack", ack
    assert rest(nodes[1], f"/api/v1/incidents/{incident}", alice)["incident"]["status"] == "resolved"


def test_hostile_forwarded_rows_are_answered_with_errors_and_run_nothing(cluster, pg_url):
    """Rows in forwarded_commands are read as untrusted: garbage, an unknown role, a command type no feature has,
    the internal ingest command for a role that does not exist — each gets an error answer, nothing runs, the node
    keeps serving."""
    nodes, alice = cluster(1)
    rows = [
        ("garbage", "admin", "not json at all"),
        ("role", "emperor", json.dumps({"type": "comment", "id": "x1", "proposal": "p-nothere", "text": "hi"})),
        ("type", "admin", json.dumps({"type": "format_disk", "id": "x2"})),
        ("deep", "admin", "[" * 5000 + "]" * 5000),
        ("missing", "admin", json.dumps({"type": "comment", "id": "x3", "proposal": "p-nothere", "text": "hi"})),
    ]
    for name, role, request in rows:
        quoted = request.replace("'", "''")
        psql(pg_url, "INSERT INTO forwarded_commands (to_node, from_node, workflow, principal, role, request, created_at) "
                     f"VALUES ('node1', 'mallory', 'proposal:p-nothere', '{name}', '{role}', '{quoted}', 1)")
    psql(pg_url, "SELECT pg_notify('medic_forward', 'to node1 1')")
    end = time.time() + 15
    while time.time() < end and psql(pg_url, "SELECT count(*) FROM forwarded_commands WHERE answer IS NULL") != "0":
        time.sleep(0.2)
    answers = psql(pg_url, "SELECT principal || '=' || answer FROM forwarded_commands ORDER BY id").splitlines()
    assert len(answers) == len(rows), answers
    for line in answers:
        name, answer = line.split("=", 1)
        message = json.loads(answer)
        assert message["type"] == "error", line
        if name == "missing":
            assert message["code"] == "not_found", line
        else:
            assert message["code"] == "invalid_message", line
    # Nothing ran: no proposal, no comment event; the node still serves.
    assert psql(pg_url, "SELECT string_agg(topic, ',') FROM events WHERE topic NOT LIKE 'repo:%'") == ""
    assert rest(nodes[0], "/api/v1/cluster", alice)["node"] == "node1"

    # Commands naming instances that do not exist leave no lease behind (a flood of made-up ids holds nothing).
    async def bogus():
        c = await Client.open(nodes[0].port, alice)
        for i in range(20):
            for msg in ({"type": "comment", "proposal": f"p-none{i}", "text": "x"}, {"type": "resume_bug", "bug": f"b-none{i}"},
                        {"type": "mark_answer", "ask": f"a-none{i}", "correct": True}):
                answer = await c.command(msg)
                assert answer["type"] == "error" and answer["code"] == "not_found", answer
        await c.close()
    asyncio.run(bogus())
    end = time.time() + 10
    while time.time() < end and psql(pg_url, "SELECT count(*) FROM leases WHERE workflow <> 'monitor:cluster'") != "0":
        time.sleep(0.2)
    assert psql(pg_url, "SELECT string_agg(workflow, ',') FROM leases WHERE workflow <> 'monitor:cluster'") == ""


def test_asks_are_leased_marked_on_their_node_and_failed_when_it_dies(cluster):
    """An ask runs on the node it was asked on while it thinks: `mark_answer` sent to another node meanwhile is
    forwarded there; once answered it leaves that node (lease given up) and any node takes the mark; an ask still
    thinking when its node is killed fails as interrupted on the node that claims it (not stuck in `thinking`)."""
    quick = {"purpose": "ask", "match": "quick", "delay_ms": 200,
             "reply": {"answer": "There are this many proposals.", "sql": "SELECT count(*) AS n FROM medic_proposals"}}
    slow = {"purpose": "ask", "match": "slow", "delay_ms": 60000,
            "reply": {"answer": "Never arrives.", "sql": "SELECT count(*) AS n FROM medic_proposals"}}
    nodes, alice = cluster(2, replies=[quick, slow])

    async def run():
        c1 = await Client.open(nodes[0].port, alice)
        c2 = await Client.open(nodes[1].port, alice)
        asked = await c1.command({"type": "ask", "question": "quick: how many proposals?", "source": "medic"})
        assert asked["type"] == "ack", asked
        ask = asked["ask"]
        await until(lambda: rest(nodes[1], f"/api/v1/asks/{ask}", alice)["status"] == "answered", 30, "the ask was answered")
        marked = await c2.command({"type": "mark_answer", "ask": ask, "correct": True, "comment": "right"})
        assert marked["type"] == "ack", marked
        assert rest(nodes[0], f"/api/v1/asks/{ask}", alice)["mark"]["correct"] is True
        # An answered ask left node1's memory and gave its lease up: node2 took the mark itself.
        assert metric(nodes[1], "medic_node_forwarded_total") == 0

        thinking = await c1.command({"type": "ask", "question": "slow: how many proposals?", "source": "medic"})
        slow_id = thinking["ask"]
        await asyncio.sleep(1.0)
        assert rest(nodes[1], f"/api/v1/asks/{slow_id}", alice)["status"] == "thinking"
        # While it thinks node1 owns it: a mark sent to node2 is forwarded and node1 refuses it (nothing to mark).
        early = await c2.command({"type": "mark_answer", "ask": slow_id, "correct": False})
        assert early["type"] == "error" and early["code"] == "invalid_state" and "thinking" in early["message"], early
        assert metric(nodes[1], "medic_node_forwarded_total") == 1
        nodes[0].proc.kill()
        nodes[0].proc.wait(timeout=10)
        await until(lambda: rest(nodes[1], f"/api/v1/asks/{slow_id}", alice)["status"] == "failed", 30, "the ask failed on node2")
        detail = rest(nodes[1], f"/api/v1/asks/{slow_id}", alice)
        assert "node1 stopped" in json.dumps(detail), detail
        await c2.close()

    asyncio.run(run())


def test_a_node_that_cannot_reach_the_repository_does_not_claim_its_work(cluster, tmp_path):
    """Two nodes, each with its own copy of the repository. node2's copy disappears (an unmounted share); node1 dies
    with a proposal in its fix loop: node2 does not claim it — the lease stays expired, the proposal waits — until
    the copy is back, then node2 claims and resumes it."""
    fix = {"match": "Unreachable", "delay_ms": 30000, "reply": {
        "unfixable": False, "explanation": "x", "changes": [{"path": "state.txt", "action": "modify", "content": "fixed\n"}]}}
    nodes, alice = cluster(2, test_command="grep -q fixed state.txt", replies=[fix], own_clone=True)
    clone2 = nodes[1].args[nodes[1].args.index("--repo") + 1]

    async def run():
        c1 = await Client.open(nodes[0].port, alice)
        ack = await c1.command({"type": "propose", "repo": "repo", "title": "Unreachable", "description": "d",
                                "changes": [{"path": "state.txt", "action": "create", "content": "broken\n"}]})
        pid = ack["proposal"]
        topic = f"proposal:{pid}"
        await c1.command({"type": "subscribe", "topic": topic, "since": 0})
        await until(lambda: any('"fixing"' in f for f in c1.frames.get(topic, [])), 60, "node1 asks for the fix")
        await c1.close()
        os.rename(clone2, clone2 + ".away")
        nodes[0].proc.kill()
        nodes[0].proc.wait(timeout=10)
        await asyncio.sleep(10 + 2 * 2 + 2)   # past the lease and two heartbeats of node2
        [lease] = [l for l in rest(nodes[1], "/api/v1/cluster", alice)["leases"] if l["workflow"] == topic]
        assert lease["node"] == "node1" and lease["expires_in_ms"] < 0 and lease["repo"] == "repo", lease
        assert rest(nodes[1], f"/api/v1/proposals/{pid}", alice)["status"] == "fixing"
        # What needs no repository moved: the monitor is node2's now.
        assert {l["workflow"]: l["node"] for l in rest(nodes[1], "/api/v1/cluster", alice)["leases"]}["monitor:cluster"] == "node2"
        assert metric(nodes[1], "medic_node_takeovers_total") == 1
        os.rename(clone2 + ".away", clone2)
        await until(lambda: [l["node"] for l in rest(nodes[1], "/api/v1/cluster", alice)["leases"] if l["workflow"] == topic] == ["node2"],
                    10, "node2 claimed the proposal once it reached the repository")
        await until(lambda: rest(nodes[1], f"/api/v1/proposals/{pid}", alice)["status"] in ("deploying", "testing", "analyzing", "fixing")
                    and any(e["data"].get("status") == "interrupted" for e in rest(nodes[1], f"/api/v1/proposals/{pid}/events?since=0&limit=1000", alice)["events"]
                            if e["kind"] == "status_changed"), 20, "resumed on node2")

    asyncio.run(run())
