"""What a reading is: one pydantic model per device type, and the site registry."""
