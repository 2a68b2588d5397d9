"""A simulator of Expo's GraphQL API (the subset the operator uses), with fault and timing knobs."""
