"""SDK-less JSON-over-HTTP providers: transform (JMESPath specs), azureml, and their shared client."""
