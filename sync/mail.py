"""Mailer: notification e-mails through the `[notify]` mail relay, and the words a person reads
in a notification (e-mail and chat channels alike).

A send answers like an HTTP attempt does, so the dispatcher records and retries
it the same way: the relay's reply code (250 when it took the message) and an
error, or no code when no relay answered. Each message's Message-ID is the
delivery id, so a retry after a lost answer can be recognised as the same mail.
"""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate

from edge.models import Event
from edge.settings import NotifySettings

ACCEPTED = 250
# Headers unfolded up to RFC 5322's hard limit: a folded Subject reaches some mail clients
# with a leading space, and a headline is one line.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def headline(event: Event) -> str:
    """One line: severity, what happened and on which device."""
    where = f" ({event.device_id})" if event.device_id else ""
    return f"[{event.severity.upper()}] {event.message}{where}"


def text(event: Event) -> str:
    """A notification's body: the headline, when, and what the event carries."""
    when = datetime.fromtimestamp(event.ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [headline(event), "", f"Event: {event.type} ({event.id})", f"At: {when}"]
    lines += [f"{key}: {value}" for key, value in sorted(event.data.items())]
    return "\n".join(lines)


class Mailer:
    """Sends one message per call through the relay the settings name."""

    def __init__(self, settings: NotifySettings, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s

    async def send(
        self, delivery_id: str, to: list[str], event: Event
    ) -> tuple[int | None, str | None]:
        """(reply code, error) of one attempt to mail `event` to `to`."""
        if not self._settings.smtp_host:
            return None, "no mail relay: set [notify] smtp_host"
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._settings.smtp_from
        message["To"] = ", ".join(to)
        message["Subject"] = headline(event)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{delivery_id}@edge-gateway>"
        message.set_content(text(event))
        return await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> tuple[int | None, str | None]:
        s = self._settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout_s) as relay:
                if s.smtp_starttls:
                    relay.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    relay.login(s.smtp_username, s.smtp_password)
                refused = relay.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            return code, f"SMTP {code}: every recipient refused ({reply.decode(errors='replace')})"
        except smtplib.SMTPResponseException as error:
            reply = error.smtp_error
            detail = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            return error.smtp_code, f"SMTP {error.smtp_code}: {detail}"
        except (OSError, smtplib.SMTPException) as error:
            kind = type(error).__name__
            return None, f"{kind}: {error}" if str(error) else kind
        if refused:
            # Some recipients took it: retrying would mail them twice, so it counts as sent.
            return ACCEPTED, f"refused by {', '.join(sorted(refused))}"
        return ACCEPTED, None
