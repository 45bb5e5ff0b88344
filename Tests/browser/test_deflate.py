"""permessage-deflate (RFC 7692) in a real browser: Chromium offers it by itself; against `medic serve` the page's
socket negotiates it (`WebSocket.extensions`) and a proposal streams in over the compressed socket, both ways
(the page's commands are compressed by Chromium, Medic's events by the server). With `--deflate off` the same page
works with no extension."""
from conftest import severe_console_errors, wait
from page import ReviewPage


def test_the_page_socket_negotiates_permessage_deflate_and_streams(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    extensions = page.js("return window.medicPage.socketExtensions()")
    assert extensions.startswith("permessage-deflate"), extensions
    assert "server_no_context_takeover" in extensions and "client_no_context_takeover" in extensions

    proposal = server.propose_demo(bot)
    page.open_proposal(proposal)  # the page subscribes (a command it sends compressed)
    wait(page.d, lambda d: len(page.console_lines()) > 1, 60, "no test output streamed over the compressed socket")
    assert page.seen_seqs(f"proposal:{proposal}")[:3] == [1, 2, 3]
    assert severe_console_errors(page.d) == []


def test_with_deflate_off_the_page_negotiates_nothing_and_works(medic_factory, browsers):
    server = medic_factory(quorum=1, extra=("--deflate", "off"))
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    assert page.js("return window.medicPage.socketExtensions()") == ""
    proposal = server.propose_demo(bot)
    page.open_proposal(proposal)
    wait(page.d, lambda d: len(page.console_lines()) > 1, 60, "no test output streamed")
