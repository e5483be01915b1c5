"""Helpers the test suites share: throwaway PostgreSQL clusters and migrated per-test databases."""
