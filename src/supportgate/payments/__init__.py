"""Payments: Stripe's webhook events grant, extend, move and end supporters' support (docs/payments.md)."""
