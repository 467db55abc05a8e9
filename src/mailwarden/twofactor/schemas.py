from __future__ import annotations

from datetime import datetime

from mailwarden.kernel.schemas import PublicSchema


class TwoFactorStatus(PublicSchema):
    """An admin's second factor, as its own account page shows it."""

    # A confirmed enrolment: the login asks for a code.
    enrolled: bool
    confirmed_at: datetime | None
    # Unused recovery codes (0 while not enrolled).
    recovery_codes_left: int
    # The settings require a second factor for this admin's role: without one, the web face
    # sends the admin to enrolment.
    required: bool


class Enrolment(PublicSchema):
    """The answer to begin_enrolment: the only time the secret is ever shown.

    The QR code carries `otpauth_uri`, and so the secret too: none of these three may be logged.
    """

    # Base32, for typing into an authenticator app by hand.
    secret: str
    otpauth_uri: str
    # SVG markup of the QR code (no XML declaration), to embed in the page.
    qr_svg: str
