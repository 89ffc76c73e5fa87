"""portal-access: the Chalice app, wired. The JSON API is one Blueprint per area (chalicelib/web/routes/), the
hosted pages are chalicelib/web/pages, and the event handlers below hand each event to its flow."""
from chalice import Chalice, Rate

from chalicelib.core import config
from chalicelib.web import console, middleware, pages, routes
from chalicelib.web.api import add_method_not_allowed

app = Chalice(app_name="portal-access")
middleware.register(app)
routes.register(app)


# --- hosted pages (what email and SMS links open) ---


pages.page(app, "/register", pages.register)
pages.page(app, "/reset-password", pages.reset_password)
pages.page(app, "/sign-in", pages.sign_in)
pages.page(app, "/staff/accept-invite", pages.accept_invite)
pages.page(app, "/staff/reset-password", pages.staff_reset_password)
pages.page(app, "/staff/change-password", pages.staff_change_password)
pages.page(app, "/portal/access", pages.access, form=False)
pages.page(app, "/staff/sign-in", pages.staff_sign_in)
pages.page(app, "/staff/sign-in/factor", pages.staff_sign_in_factor)
pages.page(app, "/staff/sign-in/setup", pages.staff_sign_in_setup)
pages.css(app)

# --- the OpenID Provider (a business's apps sign people in here) ---
pages.oauth.register(app)

# --- the admin console (office staff, in the browser) ---
console.register(app)


add_method_not_allowed(app)


# --- events -------------------------------------------------------------------------------------------------
# Each handler imports its adapter when it runs: every function's cold start loads this module, and the API's
# should not pay for the send queue, the schedule or the SES events (nor they for one another).

@app.on_sqs_message(queue=config.queue_name("bulk-invites"), batch_size=1)
def on_bulk_invite_upload(event):
    from chalicelib.events import bulk_uploads
    return bulk_uploads.handle_batch(event.to_dict(), event.context)


@app.on_sns_message(topic=config.resource_name("ses-events"))
def on_ses_event(event):
    from chalicelib.events import ses_events
    return ses_events.handle(event.message)


# The interactive lane (codes, links, answers): at most two concurrent consumers (SQS's own scaling limit, not
# reserved concurrency, which would throttle receives into the DLQ); every send takes a slot of the account's rate
# (core/send_rate.py) before bulk does.
@app.on_sqs_message(queue=config.queue_name("send"), batch_size=10, maximum_concurrency=2)
def on_send_message(event):
    from chalicelib.events import sender
    return sender.handle_batch(event.to_dict(), event.context)


# The bulk lane: a message is a kick to drain the send backlog (flows/bulk_sending.py); a lease keeps one drainer
# running, the second consumer only picks up a continuation while the first is ending.
@app.on_sqs_message(queue=config.queue_name("send-bulk"), batch_size=1, maximum_concurrency=2)
def on_send_bulk(event):
    from chalicelib.events import bulk_sender
    return bulk_sender.handle_batch(event.to_dict(), event.context)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def run_schedule(event):
    from chalicelib.events import schedule
    return schedule.run()

