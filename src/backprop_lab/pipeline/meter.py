"""How far the stacks of a launch have got, for the sweep's progress line.

The stacked launcher trains every job's networks at once, so for most of a sweep no job has
finished and the store has nothing to count. The meter watches the stacks themselves: each stack
(or piece of one, on another core) gets its own observer (`nn.training.StackObserver`), which
records after every epoch how many of its networks are still training; early stopping,
divergence and pruning shrink that number. Observers run in the training threads and the
progress line reads from another thread: each writes only its own slot (one tuple, replaced
whole), so no lock is needed. A piece trained in a forked worker process reports its epochs
to the launching process every ~0.2 s (pipeline.workers), where its observer is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backprop_lab.nn.training import StackObserver


@dataclass
class StackMeter:
    """The networks of one launch (`networks` in all, at most `epochs` epochs each)."""

    networks: int
    epochs: int
    stacks: list[tuple[int, int, int]] = field(default_factory=list)  # (epoch, live, size)

    def observer(self) -> StackObserver:
        """A new stack's observer (one per stack or piece: `Plan.observe`)."""
        slot = len(self.stacks)
        self.stacks.append((-1, 0, 0))

        def seen(epoch: int, live: int, size: int) -> None:
            self.stacks[slot] = (epoch, live, size)
        return seen

    def text(self) -> str:
        """"stacks: epoch 212/400, 1,180 training, 120 stopped, 200 waiting" (networks)."""
        started = [s for s in list(self.stacks) if s[0] >= 0]
        live = sum(s[1] for s in started)
        stopped = sum(s[2] - s[1] for s in started)
        waiting = self.networks - live - stopped
        # the stack furthest behind among those still training: the launch waits for it
        epoch = min((s[0] for s in started if s[1]), default=max((s[0] for s in started),
                                                                 default=-1))
        return (f"stacks: epoch {epoch + 1}/{self.epochs}, {live:,} training, {stopped:,} stopped, "
                f"{waiting:,} waiting")
