"""The portal's home page and the language switcher (issue 16)."""
