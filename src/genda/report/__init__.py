"""Figures, tables and the report builder: reads run dirs, never trains."""
