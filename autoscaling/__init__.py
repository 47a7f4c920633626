"""HPA tuning: a simulator of the Kubernetes HPA controller, traces, the recommender,
autoscaling/v2 manifests and the cluster's current settings."""
