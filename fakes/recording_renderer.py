"""``RecordingRenderer``: a ``bot.ports.Renderer`` that draws nothing and remembers every call, in order.

For tests of what a turn shows without a platform: ``bot.presentation.render(RecordingRenderer(), …)``,
then read ``kinds()`` (which renderer method drew what, in order) or ``items`` (the presentation items).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.ports import Renderer
from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, Item, PrivateNotice, Reply


@dataclass
class RecordingRenderer:
    # (the Renderer method called, the item it was handed), in call order.
    calls: list[tuple[str, Item]] = field(default_factory=list)

    async def reply(self, item: Reply) -> None:
        self.calls.append(("reply", item))

    async def crisis_card(self, item: CrisisResources) -> None:
        self.calls.append(("crisis_card", item))

    async def closure(self, item: ClosureNotice) -> None:
        self.calls.append(("closure", item))

    async def private_notice(self, item: PrivateNotice) -> None:
        self.calls.append(("private_notice", item))

    async def admin_alert(self, item: AlertNotice) -> None:
        self.calls.append(("admin_alert", item))

    @property
    def items(self) -> list[Item]:
        return [item for _, item in self.calls]

    def kinds(self) -> list[str]:
        """The names of the renderer methods called, in order."""
        return [method for method, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


def _implements(renderer: RecordingRenderer) -> Renderer:
    """For mypy: ``RecordingRenderer`` implements the port."""
    return renderer
