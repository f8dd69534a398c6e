"""When `/discover` calls DittoFS (`hooks.dittofs.pacing`): only once the related StatefulSet has a
ready replica, and after failures to reach a ready server at a pace that backs off (30 s doubling
to 5 min, reset by a success), with every annotation the poll does not own kept. Driven through
the Flask app against a real HTTP server on 127.0.0.1, with the hook's wall clock in the test's
hands; the parent carries what each answer wrote, merged as Metacontroller merges it."""
import orjson
import pytest

from hooks.dittofs import client as api
from hooks.dittofs import discovery, pacing
from hooks.request import adapters, controlplane
from hooks.web import app, settings
from tests import factory as f
from tests.test_discovery import CANONICAL, NAME, NAMESPACE, PORTMAPPER_DONE, closed_port, parent, secret, serve_api

START = 1_800_000_000.0   # 2027-01-15T08:00:00Z


class WallClock:
    def __init__(self):
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return WallClock()


@pytest.fixture
def hook(clock):
    found = discovery.Discovery(api.Client(connect_timeout=0.5, read_timeout=1.0, budget=2.0), clock=clock)
    return app.create_app(settings.Settings(), discovery_client=found).test_client()


class Server:
    """The parent as Metacontroller holds it between calls, its StatefulSet, and its API."""

    def __init__(self, httpserver, ready: int | None = 1):
        self.httpserver = httpserver
        self.parent = parent()
        self.ready = ready            # None: no StatefulSet yet
        self.up = True

    def related(self) -> dict:
        url = self.httpserver.url_for("/") if self.up else f"http://127.0.0.1:{closed_port()}"
        objects = [secret(url)]
        if self.ready is not None:
            objects.append(f.statefulset(NAME, NAMESPACE, ready=self.ready))
        return f.discovery_related(objects)

    def body(self) -> bytes:
        return orjson.dumps({"controller": {}, "object": self.parent, "attachments": {}, "related": self.related(),
                             "finalizing": False})

    def call(self, hook) -> dict:
        response = hook.post("/discover", data=self.body(), content_type="application/json")
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert "status" not in answer and answer["attachments"] == []
        f.merge_annotations(self.parent, answer["annotations"])
        return answer

    def requests(self) -> int:
        return len(self.httpserver.log)

    @property
    def annotations(self) -> dict:
        return self.parent["metadata"]["annotations"]

    def backoff(self) -> pacing.Backoff | None:
        return pacing.read_backoff(self.annotations)


def state(answer_or_annotations: dict) -> controlplane.State:
    return controlplane.read_state(answer_or_annotations.get("annotations", answer_or_annotations))


# --- readiness -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("ready", "says"), [(None, "does not exist yet"), (0, "has no ready replica yet")])
def test_no_ready_replica_asks_nothing_keeps_every_annotation_and_says_why(httpserver, hook, clock, ready, says):
    serve_api(httpserver)
    server = Server(httpserver, ready=ready)
    server.annotations[adapters.ANNOTATION] = CANONICAL
    before = dict(server.annotations)
    answer = server.call(hook)
    assert server.requests() == 0                           # no DittoFS call
    assert answer["resyncAfterSeconds"] >= 300              # the StatefulSet's watch brings the first poll
    assert set(answer["annotations"]) == {controlplane.STATE_ANNOTATION}   # adapters, applied: kept
    found = state(answer)
    assert found.reason == controlplane.NOT_READY != controlplane.UNREACHABLE and says in found.message
    assert server.annotations[adapters.ANNOTATION] == before[adapters.ANNOTATION]
    assert server.annotations[controlplane.APPLIED_ANNOTATION] == PORTMAPPER_DONE
    # A function of the request: the same request, the same bytes (the clock plays no part).
    first = hook.post("/discover", data=server.body(), content_type="application/json").data
    clock.now += 1000
    assert hook.post("/discover", data=server.body(), content_type="application/json").data == first


def test_scaled_to_zero_is_said_so(httpserver, hook):
    server = Server(httpserver, ready=0)
    related = server.related()
    sts = next(iter(related["StatefulSet.apps/v1"].values()))
    sts["spec"]["replicas"] = 0
    answer = hook.post("/discover", json={"controller": {}, "object": server.parent, "related": related}).get_json()
    assert "scaled to 0" in state(answer).message and server.requests() == 0


def test_the_first_ready_replica_polls_at_once(httpserver, hook):
    serve_api(httpserver)
    server = Server(httpserver, ready=0)
    server.call(hook)
    server.ready = 1                  # the StatefulSet's status changes: Metacontroller calls again
    answer = server.call(hook)
    assert answer["annotations"][adapters.ANNOTATION] == CANONICAL
    assert state(answer).reason == controlplane.AUTHENTICATED
    assert answer["resyncAfterSeconds"] == 30.0             # polling from now on


def test_without_the_statefulset_group_readiness_is_unknown_and_the_server_is_polled(httpserver, hook):
    """A customize answer cached from before StatefulSets were related (20 minutes at most)."""
    serve_api(httpserver)
    server = Server(httpserver)
    related = {"Secret.v1": server.related()["Secret.v1"]}
    answer = hook.post("/discover", json={"controller": {}, "object": server.parent, "related": related}).get_json()
    assert answer["annotations"][adapters.ANNOTATION] == CANONICAL


def test_a_status_only_change_of_the_parent_is_not_what_readiness_is_read_from(httpserver, hook):
    """The parent's status may say Running while its StatefulSet (the newer news) says otherwise."""
    serve_api(httpserver)
    server = Server(httpserver, ready=0)
    server.parent["status"] = {"readyReplicas": 1, "phase": "Running"}
    assert state(server.call(hook)).reason == controlplane.NOT_READY and server.requests() == 0


# --- backoff -------------------------------------------------------------------------------------

def test_a_ready_server_that_stops_answering_backs_off_doubling_to_a_cap_then_resets(httpserver, hook, clock):
    serve_api(httpserver)
    server = Server(httpserver)
    assert server.call(hook)["annotations"][adapters.ANNOTATION] == CANONICAL
    server.up = False
    delays = []
    for _ in range(7):
        answer = server.call(hook)
        assert adapters.ANNOTATION not in answer["annotations"]          # adapter state kept
        assert server.annotations[adapters.ANNOTATION] == CANONICAL
        assert state(server.annotations).reason == controlplane.UNREACHABLE
        delays.append(answer["resyncAfterSeconds"])
        # Metacontroller calls again at once after the annotation write (its own write): before
        # the retry time that call asks DittoFS nothing and writes nothing.
        if pacing.BACKOFF_ANNOTATION in answer["annotations"]:
            echo = server.call(hook)
            assert echo["annotations"] == {} and echo["resyncAfterSeconds"] == delays[-1]
        clock.now += answer["resyncAfterSeconds"]                        # the timer fires
    assert delays == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 300.0]
    # At the cap the annotation stops changing: a long outage writes nothing more.
    assert server.backoff().failures == 5
    # The server answers again: the next timer polls, the backoff is gone, polling is back to 30 s.
    server.up = True
    answer = server.call(hook)
    assert answer["annotations"][pacing.BACKOFF_ANNOTATION] is None
    assert pacing.BACKOFF_ANNOTATION not in server.annotations
    assert state(answer).reason == controlplane.AUTHENTICATED and answer["resyncAfterSeconds"] == 30.0


def test_no_replica_ready_any_more_forgets_the_backoff(httpserver, hook):
    server = Server(httpserver)
    server.up = False
    server.call(hook)
    assert server.backoff().failures == 1
    server.ready = 0
    answer = server.call(hook)
    assert answer["annotations"][pacing.BACKOFF_ANNOTATION] is None and server.backoff() is None
    assert state(server.annotations).reason == controlplane.NOT_READY


def test_backoff_follows_the_polling_interval(httpserver, hook, clock):
    server = Server(httpserver)
    server.parent["spec"]["adapterDiscovery"]["pollingInterval"] = "2m"
    server.up = False
    delays = []
    for _ in range(4):
        answer = server.call(hook)
        delays.append(answer["resyncAfterSeconds"])
        clock.now += answer["resyncAfterSeconds"]
    assert delays == [120.0, 240.0, 300.0, 300.0]


def test_a_missing_secret_does_not_back_off(httpserver, hook):
    """A Secret made or fixed must be used at once: only failures to reach the server back off."""
    server = Server(httpserver)
    related = server.related()
    related["Secret.v1"] = {}
    answer = hook.post("/discover", json={"controller": {}, "object": server.parent, "related": related}).get_json()
    assert state(answer).reason == controlplane.CREDENTIALS_MISSING
    assert pacing.BACKOFF_ANNOTATION not in answer["annotations"] and answer["resyncAfterSeconds"] == 30.0


@pytest.mark.parametrize("raw", ["", "{", "[]", '{"failures": 0, "retryAt": "2027-01-15T08:00:00Z"}',
                                 '{"failures": true, "retryAt": "2027-01-15T08:00:00Z"}',
                                 '{"failures": 2, "retryAt": "tomorrow"}', '{"failures": 2}'])
def test_a_malformed_backoff_annotation_is_no_backoff(raw):
    assert pacing.read_backoff({pacing.BACKOFF_ANNOTATION: raw}) is None


def test_a_call_within_the_clock_skew_of_the_retry_time_polls():
    backoff = pacing.after_failure(None, START, 30.0)
    assert backoff == pacing.Backoff(1, "2027-01-15T08:00:30Z")
    assert pacing.waiting(backoff, START + 27.0)
    assert not pacing.waiting(backoff, START + 28.5)
