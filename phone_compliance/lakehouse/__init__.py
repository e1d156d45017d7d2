"""Where things live and how Spark and Delta reach them: locations, the Spark session, Delta."""
