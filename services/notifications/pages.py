"""The two small pages an e-mail's links open: confirm a reminder, stop the messages.

Opening a link only shows a button; the button (a POST) does it. Mail scanners open every link
of a message, and must neither confirm a reminder nobody asked for nor unsubscribe anyone.
"""

import html

from fastapi.responses import HTMLResponse

ASK = {
    "confirm": ("Confirmer le rappel", "Confirm the reminder",
                "Recevoir les rappels de ce live ?", "Get this live's reminders?"),
    "unsubscribe": ("Se désabonner", "Unsubscribe",
                    "Ne plus recevoir ces messages ?", "Stop these messages?"),
}  # fmt: skip
DONE = {
    "confirm": ("C'est noté : vous serez prévenu(e).", "Done: you will be reminded."),
    "unsubscribe": ("C'est fait : vous ne recevrez plus ces messages.",
                    "Done: you will not get these messages any more."),
    "gone": ("Cet abonnement n'existe plus.", "This subscription no longer exists."),
}  # fmt: skip
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the address
}


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        "<title>Vitrine</title></head>"
        f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">{body}</body>'
        "</html>",
        status_code=status_code,
        headers=HEADERS,
    )


def ask(action: str, token: str) -> HTMLResponse:
    """A page with one button that POSTs the action."""
    button_fr, button_en, question_fr, question_en = ASK[action]
    target = html.escape(f"{action}?token={token}")
    return _page(
        f"<p>{question_fr}<br>{question_en}</p>"
        f'<form method="post" action="{target}"><button type="submit">'
        f"{button_fr} / {button_en}</button></form>"
    )


def done(what: str, status_code: int = 200) -> HTMLResponse:
    french, english = DONE[what]
    return _page(f"<p>{french}</p><p>{english}</p>", status_code)
