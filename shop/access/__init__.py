"""Who may do what: operators, the customer who placed an order, and everyone else.

- **Anyone** may read the catalogue and place an order (it is a shop). The 202 carries the order's
  access token (``orders.access_tokens``).
- **The customer holding an order's token** (``Authorization: Bearer <token>``) may read that order, its
  payment and its shipment, and cancel or delete it; no other order.
- **Operators** present one of ``SHOP_OPERATOR_KEYS`` (``operator_keys``): to the API as a bearer token,
  to the pages once on ``/sign-in`` (``operator_sessions``). They may list everything, read every
  customer's email, and press the pages' buttons.
- **Demo mode** (``SHOP_DEMO_MODE``, set by ``shop demo``) lets anyone do anything, and every page says
  so; customer emails stay masked for everyone but operators.

``api_policy`` holds the API's rules, one line per endpoint, and denies what it does not name;
``shop.pages.security`` applies the same roles to the pages.
"""
