"""An executor that runs nothing: each attempt of a job ends as its script says, and a
small DAG to drive it with. Used by the DAG-loop tests and the fault tests."""

from __future__ import annotations

from refsmith.execute.base import Completion
from refsmith.execute.dag import Node


class ScriptedExecutor:
    """Runs nothing: each attempt of a job ends as its script says (ok, fail, lost...)."""

    name = "scripted"

    def __init__(self, script: dict[str, list[str]], slots: int = 2) -> None:
        self.script = script
        self.slots = slots
        self.running: list[str] = []
        self.order: list[str] = []
        self.shut_down = False

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return self.slots - len(self.running)

    def fits(self, memory):
        return True

    def submit(self, task):
        self.running.append(task["id"])
        self.order.append(task["id"])
        return f"w{len(self.running)}"

    def wait(self, timeout):
        job = self.running.pop(0)
        outcome = self.script.get(job, ["ok"]).pop(0) if self.script.get(job) else "ok"
        if outcome == "interrupt":
            raise KeyboardInterrupt
        if outcome == "lost":
            return [Completion(job, {"ok": False, "error": "worker died"}, "w", lost=True)]
        if outcome == "permanent":
            return [Completion(job, {"ok": False, "error": "no plug-ins", "permanent": True})]
        ok = outcome == "ok"
        return [Completion(job, {"ok": ok, "outputs": [], "error": "" if ok else "bad data"})]

    def shutdown(self, *, cancel=False):
        self.shut_down = True


# a: cal, b: cal, c: cal; r1 <- a, b; r2 <- c; k <- r1, r2; z: independent cal
DAG = [
    Node("cal-a", "calibration", {}), Node("cal-b", "calibration", {}),
    Node("cal-c", "calibration", {}), Node("cal-z", "calibration", {}),
    Node("reffile-1", "reffile", {}, ("cal-a", "cal-b")),
    Node("reffile-2", "reffile", {}, ("cal-c",)),
    Node("combine-k", "combine", {}, ("reffile-1", "reffile-2")),
]
