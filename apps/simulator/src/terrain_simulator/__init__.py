"""The field-day simulator: generate a realistic campaign day, send it, check the promises."""
