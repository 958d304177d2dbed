"""Moderation: the platform's policy as data, turning matches and classifier scores into verdicts and actions."""
