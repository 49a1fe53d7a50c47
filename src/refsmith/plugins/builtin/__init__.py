"""The plug-ins shipped with refsmith (registered in :mod:`refsmith.plugins.registry`)."""
