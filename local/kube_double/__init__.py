"""A local Kubernetes API double: the REST subset KubernetesPodOperator uses, and a kubelet that runs pods."""
