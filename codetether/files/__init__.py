"""Input files (CONTRACT §11): uploads, their storage, task attachments and their expiry."""
