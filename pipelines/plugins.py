"""Let Hydra find backprop-lab's own launcher (`hydra/launcher=stacked`).

Hydra accepts plugins only from the `hydra_plugins` package and finds them by listing that
package's folders (pkgutil). An editable install (`pip install -e .`, what `make` does) maps
`hydra_plugins.backprop_lab_launcher` through an import hook that such a listing does not see,
so the launcher would import but stay unknown to Hydra. Adding its real folder to the namespace
package's path fixes that; an ordinary install puts it in site-packages, where it is found anyway.
"""

from __future__ import annotations

from pathlib import Path

import hydra_plugins.backprop_lab_launcher as launcher


def find_launcher() -> None:
    import hydra_plugins

    folder = str(Path(launcher.__file__).resolve().parents[1])
    if folder not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(folder)
