"""Win-back: tasks from alerts, CRM outcomes, their views in the store and the evaluation report."""
