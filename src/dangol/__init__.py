"""Dangol (단골): a CRM for Korean businesses with many business units."""
