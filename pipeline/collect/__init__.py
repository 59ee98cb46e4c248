"""Ways data comes in by pull or import: vendor API collectors, and the HR roster file."""
