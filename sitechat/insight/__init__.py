"""``sitechat report`` and ``sitechat export``: a period's chats as a picture and text, or as rows."""
