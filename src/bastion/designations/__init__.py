"""Designated entities (terrorist and violent-extremist organisations): their links to banks, keywords and policy
categories, and changes of category confirmed by a person before they apply."""
