"""Haven on Discord speaks each person's language: an interaction's locale (the person's Discord client)
picks the words of what answers it, and in a plain message's thread the server's preferred locale does.
Driven through discord.py's real gateway and HTTP code against the fake Discord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import Services
from bot.i18n import strings_for
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import EPHEMERAL, FakeDiscord
from tests.discord.conftest import World, abuse_proposal, running, verdict

ES = strings_for("es-ES")


def closures(api: FakeDiscord, channel: int) -> list[dict[str, Any]]:
    """The closure notices in ``channel``, in any language: the messages with the mistake button."""
    return [
        m
        for m in api.bot_messages(channel)
        for row in m.get("components", [])
        for c in row.get("components", [])
        if str(c.get("custom_id", "")).startswith("haven:mistake:")
    ]


def button(message: dict[str, Any]) -> dict[str, Any]:
    [only] = [c for row in message["components"] for c in row["components"]]
    return dict(only)


async def test_a_spanish_server_gets_the_spanish_closure_notice(
    world: World, services: Services, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    api = world.api
    world.guild.preferred_locale = "es-ES"  # before Haven connects: the guild arrives with it
    anthropic.enqueue(
        abuse_proposal(),
        text("Por favor, deja los insultos."),
        abuse_proposal(),
        text("Último aviso: deja los insultos o terminaré la conversación."),
        abuse_proposal(text_before="Termino esta conversación ahora."),
        verdict(persistent_abuse=True, risk=False),
    )
    async with running(services):
        mention = await api.post_message(world.channel, world.alice, "eres un inútil", mention_bot=True)
        thread = int(mention["id"])
        await api.wait_until(lambda: api.bot_messages(thread), what="warning 1", within=20)
        await api.post_message(thread, world.alice, "cállate, bot estúpido")
        await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="warning 2", within=20)
        await api.post_message(thread, world.alice, "basura, todo")
        await api.wait_until(lambda: closures(api, thread), what="the closure notice", within=20)

    [closure] = closures(api, thread)
    embed = closure["embeds"][0]
    assert embed["title"] == "Esta conversación ha terminado"
    assert embed["description"] == ES("notice.reason_abuse")
    assert [f["name"] for f in embed["fields"]] == ["Empezar de nuevo", "Continuar de otra manera"]
    assert ES("discord.hint_new_guild") in embed["fields"][0]["value"]
    assert embed["footer"]["text"].startswith("¿Este cierre fue un error?")
    assert button(closure)["label"] == "Este cierre fue un error"


async def test_a_spanish_client_gets_spanish_answers_to_its_interactions(
    world: World, services: Services, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """An English server; Alice's Discord client is in Spanish, Bob's in English."""
    api = world.api
    world.alice.locale = "es-ES"
    anthropic.enqueue(text("¡Hola!"))
    async with running(services):
        mention = await api.post_message(world.channel, world.alice, "hola", mention_bot=True)
        thread = int(mention["id"])
        await api.wait_until(lambda: api.bot_messages(thread), what="the reply", within=20)

        stranger = await api.slash(world.bob, thread, "haven", "end")
        await api.wait_until(lambda: stranger.complete, what="the refusal", within=20)
        assert stranger.texts() == [strings_for("en")("notice.not_participant")]

        ended = await api.slash(world.alice, thread, "haven", "end")
        await api.wait_until(lambda: closures(api, thread), what="the closure notice", within=20)
        await api.wait_until(lambda: ended.complete, what="the acknowledgement", within=20)
        assert ended.texts() == [ES("notice.closed")] and ended.messages()[0]["flags"] & EPHEMERAL

        helped = await api.slash(world.alice, thread, "haven", "help")
        await api.wait_until(lambda: helped.complete, what="the help", within=20)
        assert helped.texts() == [ES("help.discord")]

        not_a_link = await api.slash(world.alice, thread, "haven", "fork", message="no link", text="x")
        await api.wait_until(lambda: not_a_link.complete, what="the fork note", within=20)
        assert not_a_link.texts() == [ES("discord.not_a_link")]

        [closure] = closures(api, thread)
        assert closure["embeds"][0]["title"] == ES("notice.closure_title")
        assert closure["embeds"][0]["description"] == ES("notice.reason_user_command")
        assert button(closure)["label"] == ES("notice.mistake_button")

        click = await api.click(world.alice, closure, button(closure)["custom_id"])
        modal = await api.wait_until(lambda: click.modal, what="the feedback form", within=20)
        assert modal["title"] == ES("discord.feedback_title")
        thanks = await api.submit_modal(world.alice, thread, modal, "Fue sin querer")
        await api.wait_until(lambda: thanks.complete, what="the thanks", within=20)
        assert thanks.messages()[0]["content"] == ES("notice.feedback_thanks")

        # The same button pressed by an English client: the form in English.
        other = await api.click(world.bob, closure, button(closure)["custom_id"])
        english = await api.wait_until(lambda: other.modal, what="the English form", within=20)
        assert english["title"] == "Report a mistaken ending"


async def test_in_a_dm_notices_follow_the_persons_latest_interaction(
    world: World, services: Services, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """A DM has no server language: once Alice's Spanish client has used a command, the reminder of her
    ended DM conversation (a plain message, no interaction) is in Spanish too."""
    api = world.api
    world.alice.locale = "es-ES"
    anthropic.enqueue(text("¡Hola!"))
    async with running(services):
        dm = api.dm_channel(world.alice)
        await api.post_message(dm, world.alice, "hola en privado")
        await api.wait_until(lambda: api.bot_messages(dm), what="the DM reply", within=20)
        ended = await api.slash(world.alice, dm, "haven", "end")
        await api.wait_until(lambda: closures(api, dm), what="the DM closure notice", within=20)
        await api.wait_until(lambda: ended.complete, what="the acknowledgement", within=20)
        assert closures(api, dm)[0]["embeds"][0]["title"] == ES("notice.closure_title")

        before = len(api.bot_messages(dm))
        await api.post_message(dm, world.alice, "¿hola?")
        await api.wait_until(lambda: len(api.bot_messages(dm)) == before + 1, what="the reminder", within=20)
        reminder = api.bot_messages(dm)[-1]["content"]
        assert reminder.startswith("Esta conversación ha terminado") and ES("discord.hint_new_dm") in reminder
