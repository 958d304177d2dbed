"""Removal orders under Regulation (EU) 2021/784: the platform's contact point, and the wire both ends speak."""
