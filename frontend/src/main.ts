import "./style.css";
import { api } from "./api";
import { mountApp } from "./app";
import { runtime } from "./runtime";

mountApp(document.getElementById("app")!, { api, runtime });
