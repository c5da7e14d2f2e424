"""The `pairwire` command: serve, migrate, token, bot."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from datetime import timedelta

from .settings import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bot":
        args.bot_args = rest  # parsed by the bot's own parser (see _bot)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pairwire: {exc}", file=sys.stderr)
        return 2
    return int(args.run(settings, args) or 0)


BOT_HELP = "run aiortc bots that sign in, queue, and make real WebRTC calls"
BOT_DESCRIPTION = (
    "A real Pairwire client: signs in as a guest, joins the queue over Socket.IO, and on a match runs an "
    "aiortc peer connection sending synthetic video and counting the frames it receives. Prints progress on "
    "stderr and a JSON report on stdout."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairwire",
        description="Pairwire: pairs people for one-to-one video and text calls. "
        "Configuration comes from PAIRWIRE_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the server (REST, Socket.IO and the web client)",
        description="Run the server on PAIRWIRE_HOST:PAIRWIRE_PORT (default 127.0.0.1:8080). "
        "The database must be migrated first (`pairwire migrate`). SIGTERM shuts down gracefully: "
        "sockets are closed and open matches are ended with an end time.",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply the Alembic migrations to PAIRWIRE_DATABASE_URL "
        "(default: a SQLite file in PAIRWIRE_DATA_DIR).",
    )
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(run=_migrate)

    token = commands.add_parser(
        "token",
        help="mint a signed token for an operator or a test user",
        description="Print a JWT signed with the server's key (PAIRWIRE_SECRET, or the generated key "
        "in PAIRWIRE_DATA_DIR), e.g. for a moderator: pairwire token --user alice --role moderator",
    )
    token.add_argument("--user", required=True, help="user id (the token's subject)")
    token.add_argument("--role", default="user", choices=["user", "moderator", "admin"])
    token.add_argument("--name", help="display name carried in the token")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default: PAIRWIRE_TOKEN_TTL_SECONDS)")
    token.set_defaults(run=_token)

    # The bot's own parser lives with the bot, which imports aiortc: only `pairwire bot`
    # loads it, so `serve` does not pay for a media stack it never uses.
    bot = commands.add_parser("bot", help=BOT_HELP, description=BOT_DESCRIPTION, add_help=False)
    bot.set_defaults(run=_bot)
    return parser


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import NotMigrated, build_app
    from .logs import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is optional (not on Windows)
        pass
    app = build_app(settings)
    app.on_startup.append(_settle_garbage_collector)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            shutdown_timeout=settings.shutdown_timeout,
            access_log=None,
            print=lambda msg: print(f"pairwire: serving on http://{settings.host}:{settings.port}", flush=True),
        )
    except NotMigrated as exc:
        print(f"pairwire: {exc}", file=sys.stderr)
        return 3
    return 0


async def _settle_garbage_collector(_app: object) -> None:
    # Everything built at start-up lives for the whole run: move it out of the collector's
    # sight, and collect the young generation less often. Under relay load the cyclic
    # collector otherwise takes a fifth of the CPU (docs/performance.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _bot(_settings: Settings, args: argparse.Namespace) -> int:
    from media import bot as bot_module

    parser = argparse.ArgumentParser(prog="pairwire bot", description=BOT_DESCRIPTION)
    bot_module.add_arguments(parser)
    return bot_module.run_from_args(parser.parse_args(args.bot_args))


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from matching.store.migrate import upgrade_url

    url = settings.resolved_database_url
    upgrade_url(url, args.revision)
    print(f"pairwire: database at {args.revision} ({_safe_url(url)})")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from matching.identity import Role

    from .tokens import token_service

    tokens = token_service(settings)
    ttl = timedelta(seconds=args.ttl) if args.ttl else None
    print(tokens.mint(args.user, Role(args.role), name=args.name, ttl=ttl))
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
