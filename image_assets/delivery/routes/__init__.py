"""The service's routes, one module per area; ``app.create_app`` assembles them."""
