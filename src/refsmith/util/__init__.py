"""Helpers every stage may use; none of them knows of JWST or of a stage.

``record`` (``@record``: frozen dataclasses with a cheap constructor), ``files`` (atomic
writes, temporaries, a full disk told apart), ``ecsv`` (the run directory's tables),
``identity`` (a file's identity: metadata, then content), ``memory`` (sizes such as
``4GiB``, this process's and this machine's memory, glibc's allocator), ``gc_pause`` (the
cyclic garbage collector paused around a block), ``lazy`` (names of a package imported on
first use). Import them from their modules: this package exports nothing itself.
"""

__all__: list[str] = []
