"""The command-line option every script that takes --classifier shares: --trust-classifier (load_classifier trust)."""

import click

trust_classifier_option = click.option(
    "--trust-classifier", is_flag=True, default=False,
    help="Run a TF SavedModel classifier's own saved graph (it is code: only for folders you trust) instead of "
         "rebuilding the network from params.json and reading only its weights.")
