"""The runout forecast: when each tray's spool runs out during a job (``core``, pure), kept up to date
while jobs print (``service``) and asked for before printing (``web.forecast_api``)."""
