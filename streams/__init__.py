"""The only package that knows Faust: the app, its topics, table and agents."""
